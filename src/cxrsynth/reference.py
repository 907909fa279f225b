"""Published figures of paper 001 (Segal et al. 2021), for side-by-side reports. NIH spelling of labels."""

#: Table 1: FID per split (Inception features, full NIH at the paper's resolution).
TABLE1_FID = {
    "stratified": 0.53, "sex": 7.87, "Atelectasis": 19.90, "Cardiomegaly": 14.23, "Consolidation": 42.45,
    "Edema": 59.40, "Effusion": 23.90, "Emphysema": 19.56, "Fibrosis": 9.72, "Hernia": 15.96,
    "Infiltration": 20.05, "Mass": 10.06, "Nodule": 6.22, "Pleural_Thickening": 13.05, "Pneumonia": 32.05,
    "Pneumothorax": 18.00, "synthetic": 8.02,
}

#: Table 2: test AUROC of DenseNet-121 trained on (embedded, class-generated, real) images.
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
TABLE2_AVERAGE = (0.604, 0.878, 0.947)
TABLE2_COLUMNS = ("embedded", "class_generated", "real")
