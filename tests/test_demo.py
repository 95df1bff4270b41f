"""``tools/demo.py`` (``make demo``) end to end, shortened: a few images and
one epoch, run as a subprocess from a clean work dir."""
import json
import os.path as osp
import re
import subprocess
import sys

import cv2

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def test_demo_writes_report_plot_and_results(tmp_path):
    work_dir = tmp_path / 'demo'
    result = subprocess.run([
        sys.executable,
        osp.join(ROOT, 'tools', 'demo.py'), '--work-dir',
        str(work_dir), '--train', '16', '--val', '8', '--epochs', '1'
    ],
                            cwd=ROOT,
                            capture_output=True,
                            text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]

    # the data set it generated
    with open(work_dir / 'data' / 'annotations' / 'instances_val.json') as f:
        val = json.load(f)
    assert len(val['images']) == 8

    # the report: the config's model, trained for 1 epoch, with its AP
    report = (work_dir / 'report.md').read_text()
    assert '| epochs | 1 |' in report
    assert '16 train / 8 val synthetic images' in report
    mean_ap = float(re.search(r'\| bbox mAP \| ([0-9.]+) \|', report)[1])
    assert 0 <= mean_ap <= 1
    params = float(re.search(r'\| parameters \| ([0-9.]+)M \|', report)[1])
    assert params > 0.1
    assert '## bbox AP per image occlusion ratio' in report
    assert report in result.stdout
    # the evaluation's progress bar: 8 images, one batch, after the training
    # and in the test
    assert len(re.findall(r'\] 1/1, [0-9.]+ task/s', result.stdout)) == 2

    # the per-bin results and the plot it points at
    with open(work_dir / 'results.occlusion.json') as f:
        occlusion = json.load(f)
    assert occlusion
    image = cv2.imread(str(work_dir / 'ap_vs_occlusion.png'))
    assert image is not None and image.shape[0] > 100
    assert f'report: {work_dir / "report.md"}' in result.stdout
