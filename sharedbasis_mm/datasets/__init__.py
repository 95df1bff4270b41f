from .synthetic import CLASSES, make_synthetic_coco, synthetic_image

__all__ = ['CLASSES', 'synthetic_image', 'make_synthetic_coco']
