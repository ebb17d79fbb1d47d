"""The paper's human study (§3.4): Experiment 1 (2AFC, trivial vs impossible) and Experiment 2 (ratings),
built from stores as a jsPsych experiment that runs offline from ``file://``, and scored from its results.
"""
