# The shared filter bases paper's detection schedule (Section 4.3): mmdet's 1x
# schedule (12 epochs, lr / 10 at epochs 8 and 11, 500 linear warm-up
# iterations) with SGD lr 0.01, momentum 0.9 and weight decay 1e-4 on batches
# of 8 images (4 GPUs x 2 images, mmdet's 2 images per GPU).
_base_ = 'mmdet::_base_/schedules/schedule_1x.py'

optim_wrapper = dict(optimizer=dict(lr=0.01))
auto_scale_lr = dict(base_batch_size=8)
