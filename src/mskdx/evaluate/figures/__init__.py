"""The papers' figures, one module per kind: training curves (`curves`), confusion matrices
(`confusion`), ROC curves (`roc`), the patient-level threshold search (`threshold`), prediction
montages and the crop QC (`montage`), Grad-CAM overlays and localisation (`gradcam`), reliability
diagrams and decision curves (`calibration`); what they share is in `common`. Each module holds
its `plot_*` functions and the `*_step` entry point its rule script calls.

Each `plot_*` function draws one figure and writes it to every path in `outputs`; the format
follows the suffix (.png, .pdf, .svg). Files are written atomically (`mskdx.io.atomic_path`).
`style` is the config's `figures` section: `dpi`, `roc.linewidth`, `roc.ci_band`,
`montage.images`, `montage.columns` (missing keys take the defaults of `config/config.yaml`).

Figures are built as `matplotlib.figure.Figure` objects, never registered with pyplot: no backend
is selected, no global figure stays open, and nothing needs closing. Drawing and saving run under
matplotlib's default style (a user's matplotlibrc does not leak in), with a fixed `svg.hashsalt`
and without creation dates, so identical input gives byte-identical PNG, PDF and SVG files for a
given matplotlib version and font set (`tests/unit/test_figures.py` checks this).

Only pseudonymous image ids (`I-` + 12 hex digits, `mskdx.ingest.deid`) may appear in captions; the
montage functions refuse anything else.
"""
