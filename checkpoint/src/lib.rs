//! Weights on disk: torchvision `.pth` (PyTorch zip + pickle), `.safetensors`, our checkpoints.
