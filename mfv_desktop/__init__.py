"""mfv_desktop: a desktop workbench for multimodal function vectors."""

__version__ = "0.1.0"
