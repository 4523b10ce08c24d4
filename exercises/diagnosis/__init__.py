"""Misconception diagnosis: wrong answers that known mistakes produce, matched against a learner's.

`rules` lists, per operation, how a local derivative is commonly got wrong;
`candidates` recomputes the backward pass under each such mutation (torch) and
adds whole-answer mistakes (parts swapped, wrong variable, doubled, sign).
"""
