"""The class labels the feature tables carry, in a module that imports nothing.

:mod:`thetaflow.features.compute` writes them; the ML and unsupervised stages read them from
here, which spares a training job the feature stage's imports (awkward, vector, pyarrow, the
sample list's schema): about 0.3 s of CPU per job.
"""

LABEL_SIGNAL, LABEL_BACKGROUND, LABEL_DATA = 1, 0, -1
#: label of the blind search's "unknown" process (sample kind ``bsm``): neither class of training
LABEL_BSM = 2
