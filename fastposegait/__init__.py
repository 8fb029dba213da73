"""FastPoseGait: pose-based gait recognition, config-driven, CPU or GPU, one process or many."""
__version__ = "0.1.0"
