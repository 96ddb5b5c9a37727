"""Stage 1, DICOM in: walk a folder tree, read and check DICOM files, de-identify, read the label
sheet, find the image region, crop and normalize, and write the study's image cache
(rule files `extract.smk`, and `external.smk`'s extraction)."""
