# Learning Deeply Shared Filter Bases, eq. 7:
#   L_R = L + lambda * sum_g ||W_g^T W_g - I||^2
# over every shared filter basis of the model, added to the training losses
# as `loss_orth` by a hook (no change to the model). lambda = 10 with the
# mean over the Gram entries, as attributed to the authors' training scripts;
# reduction='sum' is eq. 7 literally. Add this file to the `_base_` of a
# config whose model has shared bases (and which imports sharedbasis_mm
# through `custom_imports`).
custom_hooks = [
    dict(
        type='OrthogonalityLossHook',
        loss_weight=10.,
        reduction='mean',
        log_interval=100)
]
