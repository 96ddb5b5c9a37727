"""Stage 2, models: patient-level splits, networks, augmentation, the training job of one
study x arm x fold with its device plan and checkpoints, and Grad-CAM on the trained models
(rule files `splits.smk`, `train.smk`, `gradcam.smk`)."""
