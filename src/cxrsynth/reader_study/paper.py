"""Paper 001's reader study (section 4.4), for side-by-side reports."""

#: 3 consultants and 5 registrars; six grids of six films (each real with probability 0.5), 20 pairs, 260x260.
DESIGN = {"readers": {"consultant": 3, "registrar": 5}, "grids": 6, "grid_size": 6, "pairs": 20,
          "display_size": 260, "form": "Google Form"}

#: rate, 95% interval, one-sided t-test p-value against 50% ("p < 0.0001" kept as its bound)
RESULTS = {
    "real_called_real": {"rate": 0.73, "ci": [0.63, 0.82], "p": 0.0001, "p_is_bound": True},
    "generated_called_real": {"rate": 0.61, "ci": [0.51, 0.70], "p": 0.0155, "p_is_bound": False},
    "hype_inf": {"rate": 0.33, "ci": [0.24, 0.43]},
    "pair_accuracy": {"rate": 0.71, "ci": [0.55, 0.86]},
}

#: what the paper's own numbers imply (written here so a report can say it once)
NOTE = ("HYPE-infinity as Zhou et al. define it (the share of films called wrongly) follows from the paper's "
        "two rates: (1 - 0.73 + 0.61) / 2 = 0.44 on a balanced set; the paper's 0.33 would need 82% of its grid "
        "films to be real, against the design's 50%, so its exact definition is not recoverable from the text.")
