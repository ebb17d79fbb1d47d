"""Full-scale recipes of the paper's controlled experiment (ResNet-18 / DenseNet-121 on CIFAR, ImageNet,
and the Gaussian-noise dataset), built on lightning-ddd. Not installed with the package."""
