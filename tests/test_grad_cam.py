"""mmpretrain's own Grad-CAM tool (tools/visualization/vis_cam.py, with the
grad-cam package) on a shared-basis and a tied classifier (Tied Block
Convolution, Figure 8): the CAM it draws is the Grad-CAM of the last stage
computed by hand, and the image it writes is that CAM over the input."""
import os.path as osp
import runpy
import sys

import cv2
import mmcv
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import default_collate
from mmengine.registry import DefaultScope

from sharedbasis_mm.analysis import build_model_from_config
from sharedbasis_mm.analysis.filter_similarity import generated_images

cam_image = pytest.importorskip(
    'pytorch_grad_cam.utils.image',
    reason='grad-cam (requirements/optional.txt) is not installed')
mmpretrain = pytest.importorskip('mmpretrain')
from mmcv.transforms import Compose  # noqa: E402
from mmpretrain.registry import TRANSFORMS  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
VIS_CAM = osp.join(
    osp.dirname(mmpretrain.__file__), '.mim', 'tools', 'visualization',
    'vis_cam.py')
# the test pipeline shrunk: resize the short edge to 64, crop 56 x 56
SMALL_PIPELINE = {'test_dataloader.dataset.pipeline.1.scale': 64,
                  'test_dataloader.dataset.pipeline.2.crop_size': 56}


def hand_grad_cam(model, inputs: torch.Tensor, layer: str) -> np.ndarray:
    """Grad-CAM (Selvaraju et al.) of the top class at ``layer``: the ReLU
    of the activations weighted by their spatially averaged gradients,
    scaled to [0, 1] and resized to the input."""
    kept = {}
    handle = model.get_submodule(layer).register_forward_hook(
        lambda module, args, output: kept.update(activations=output))
    logits = model(inputs)
    handle.remove()
    activations = kept['activations']
    grads, = torch.autograd.grad(logits[0, logits[0].argmax()], activations)
    cam = (grads.mean((2, 3), keepdim=True) * activations).sum(1)[0]
    cam = cam.clamp(min=0).detach().numpy()
    cam = (cam - cam.min()) / (1e-7 + cam.max() - cam.min())
    return cv2.resize(cam, inputs.shape[:1:-1])


@pytest.mark.parametrize('config', [
    'configs/shared_basis/resnet34-s48u1_8xb32_in1k.py',
    'configs/tied/tiedresnet50_8xb32_in1k.py',
])
def test_vis_cam_draws_the_grad_cam_of_the_last_stage(config, tmp_path,
                                                      monkeypatch):
    torch.manual_seed(0)
    cfg = Config.fromfile(osp.join(ROOT, config))
    cfg.merge_from_dict(SMALL_PIPELINE)
    model = build_model_from_config(cfg).eval()
    checkpoint = str(tmp_path / 'model.pth')
    torch.save(dict(state_dict=model.state_dict()), checkpoint)
    image_path = str(tmp_path / 'image.png')
    image = generated_images(1, 64, seed=1)[0].permute(1, 2, 0)
    mmcv.imwrite(image.numpy().astype(np.uint8), image_path)
    out_path = tmp_path / 'cam.png'

    drawn = {}
    original = cam_image.show_cam_on_image

    def keep_cam(img, mask, **kwargs):
        drawn.update(img=img, mask=mask)
        return original(img, mask, **kwargs)

    monkeypatch.setattr(cam_image, 'show_cam_on_image', keep_cam)
    monkeypatch.setattr(sys, 'argv', [
        'vis_cam.py', image_path, osp.join(ROOT, config), checkpoint,
        '--target-layers', 'backbone.layer4', '--save-path', str(out_path),
        '--cfg-options', *(f'{k}={v}' for k, v in SMALL_PIPELINE.items())])
    # as in the tool's own process, whose builds use mmpretrain's registries
    # (another test of this process may have left another default scope)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        runpy.run_path(VIS_CAM, run_name='__main__')
        # the reference: the same input through the same pipeline, by hand
        data = Compose([
            TRANSFORMS.build(t) for t in cfg.test_dataloader.dataset.pipeline
        ])(dict(img_path=image_path))
    source = data['inputs'].numpy().transpose(1, 2, 0)
    inputs = model.data_preprocessor(default_collate([data]), False)['inputs']
    expected = hand_grad_cam(model, inputs, 'backbone.layer4')
    assert expected.std() > 0.05  # a CAM with structure, not a flat one
    np.testing.assert_allclose(drawn['img'], source / 255, atol=1e-6)
    np.testing.assert_allclose(drawn['mask'], expected, atol=1e-3)

    written = mmcv.imread(str(out_path))
    assert written.shape == (56, 56, 3)
    np.testing.assert_array_equal(
        written, original(drawn['img'], drawn['mask'], use_rgb=False))
    # not blank: the CAM's colours over the input, not the input itself
    assert np.abs(written.astype(float) - source).mean() > 10
    assert written.std() > 10
