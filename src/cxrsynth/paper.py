"""The published numbers of paper 001, for side-by-side reports: the one place they are written.

Segal et al. (2021), "Evaluating the clinical realism of synthetic chest x-rays generated using
progressively growing GANs" (``shared/papers/001_*.txt``). Labels use NIH's spelling
(``Effusion`` for the paper's "Pleural Effusion", ``Pleural_Thickening``). Each constant names the
table, figure or section it is copied from; ``tests/test_paper.py`` checks them for completeness
and consistency (Table 2's averages are its rows' means).
"""

#: Table 1 (section 4.1): FID per split (Inception features, full NIH at the paper's resolution):
#: stratified halves, sex, No Finding against each finding, all real against 100,000 generated
#: ("synthetic"). The paper's row "No Finding 0.00" (the baseline against itself) is left out.
TABLE1_FID = {
    "stratified": 0.53, "sex": 7.87, "Atelectasis": 19.90, "Cardiomegaly": 14.23, "Consolidation": 42.45,
    "Edema": 59.40, "Effusion": 23.90, "Emphysema": 19.56, "Fibrosis": 9.72, "Hernia": 15.96,
    "Infiltration": 20.05, "Mass": 10.06, "Nodule": 6.22, "Pleural_Thickening": 13.05, "Pneumonia": 32.05,
    "Pneumothorax": 18.00, "synthetic": 8.02,
}

#: Table 2 (section 4.5): the columns of ``TABLE2_AUROC`` and ``TABLE2_AVERAGE``.
TABLE2_COLUMNS = ("embedded", "class_generated", "real")

#: Table 2: test AUROC of DenseNet-121 trained on (embedded, class-generated, real) images, per label.
TABLE2_AUROC = {
    "Atelectasis": (0.646, 0.851, 0.923),
    "Cardiomegaly": (0.602, 0.907, 0.968),
    "Consolidation": (0.675, 0.928, 0.963),
    "Edema": (0.746, 0.941, 0.985),
    "Emphysema": (0.51, 0.901, 0.972),
    "Fibrosis": (0.63, 0.868, 0.961),
    "Hernia": (0.611, 0.951, 0.986),
    "Infiltration": (0.596, 0.796, 0.847),
    "Mass": (0.516, 0.825, 0.936),
    "No Finding": (0.605, 0.861, 0.932),
    "Nodule": (0.543, 0.748, 0.909),
    "Effusion": (0.636, 0.903, 0.954),
    "Pleural_Thickening": (0.583, 0.881, 0.954),
    "Pneumonia": (0.595, 0.932, 0.975),
    "Pneumothorax": (0.568, 0.877, 0.947),
}

#: Table 2's "Average" row.
TABLE2_AVERAGE = (0.604, 0.878, 0.947)

#: Section 4.4 (radiologist review): 3 consultants and 5 registrars; six grids of six films (each
#: real with probability 0.5), 20 pairs, shown at 260x260 in a Google Form.
READER_STUDY_DESIGN = {"readers": {"consultant": 3, "registrar": 5}, "grids": 6, "grid_size": 6, "pairs": 20,
                       "display_size": 260, "form": "Google Form"}

#: Section 4.4: rate, 95% interval, one-sided t-test p-value against 50% ("p < 0.0001" kept as its bound).
READER_STUDY_RESULTS = {
    "real_called_real": {"rate": 0.73, "ci": [0.63, 0.82], "p": 0.0001, "p_is_bound": True},
    "generated_called_real": {"rate": 0.61, "ci": [0.51, 0.70], "p": 0.0155, "p_is_bound": False},
    "hype_inf": {"rate": 0.33, "ci": [0.24, 0.43]},
    "pair_accuracy": {"rate": 0.71, "ci": [0.55, 0.86]},
}

#: What section 4.4's own numbers imply (written here so a report can say it once).
READER_STUDY_NOTE = (
    "HYPE-infinity as Zhou et al. define it (the share of films called wrongly) follows from the paper's "
    "two rates: (1 - 0.73 + 0.61) / 2 = 0.44 on a balanced set; the paper's 0.33 would need 82% of its grid "
    "films to be real, against the design's 50%, so its exact definition is not recoverable from the text.")

#: Packhäuser et al., ISBI 2023 (class-conditional latent diffusion on ChestX-ray14, privacy-enhancing sampling):
#: a classifier trained only on its synthetic films trails the real-data classifier by this share of AUROC.
#: Not one of our papers' own tables: ../shared/reference/diffusion-and-privacy.md gives it.
PACKHAUSER_2023_AUROC_GAP = 0.035
#: Segal et al.'s own gap (Table 2's average): 1 - class-generated / real.
SEGAL_2021_AUROC_GAP = round(1 - TABLE2_AVERAGE[1] / TABLE2_AVERAGE[2], 4)
