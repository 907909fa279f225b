"""Data sources for the ``download`` stage: each fills ``data/raw`` in the NIH layout.

Layout written by every source::

    raw/images/NNNNNNNN_NNN.png
    raw/Data_Entry_2017_v2020.csv  (or Data_Entry_2017.csv, as the source has it)
    raw/BBox_List_2017.csv         (when available)
    raw/train_val_list.txt, raw/test_list.txt  (when available)
"""

METADATA_NAMES = ("Data_Entry_2017_v2020.csv", "Data_Entry_2017.csv")
BBOX_NAME = "BBox_List_2017.csv"
LIST_NAMES = ("train_val_list.txt", "test_list.txt")
