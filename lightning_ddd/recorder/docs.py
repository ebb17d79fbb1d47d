"""The shared docstring of both ``DecisionRecorder`` classes."""

RECORDER_DOC = """Record every validation sample's decision at every validation run into an HDF5 store.

One row per validation run and split, keyed by global step: correctness, predicted class, per-sample
cross-entropy loss and margin (target logit minus the largest other logit), with an ``evaluated`` mask. The
untrained network is recorded as the first row ("before training", epoch 0) when the sanity check is
complete (``Trainer(num_sanity_val_steps=-1)``) or through :func:`lightning_ddd.validate_before_fit`.
Nothing leaves the device during the epoch; one gather per split runs at epoch end, and only global
rank 0 writes the file. The state goes into checkpoints, so a resumed run continues its store.

Args:
    dirpath: folder of the stores; one file ``<run_name>.h5`` per run.
    run_name: file name of the store; default: the first logger's ``<name>_version_<v>``, else a time stamp.
    splits: names of the validation dataloaders' splits; default ``"val"`` or ``"val_<i>"``.
    module: name of the submodule whose output are the logits (default: the LightningModule itself).
    record_loss: store per-sample cross-entropy (true-class probability is ``exp(-loss)``).
    record_margin: store per-sample margins (for AUM).
    precision: ``"float32"`` or ``"float16"`` for loss and margin (float16 keeps about 3 significant
        digits, relative error at most 2**-11; values beyond 65504 become inf).
    log_summaries: log live scalars through ``LightningModule.log`` at each validation epoch end.
    log_prefix: prefix of the logged keys.
    burn_in: rows ignored by the live categories. Default: the analysis' rule
        (:func:`lightning_ddd.analysis.default_burn_in`): 1 when the split's first row is the untrained
        network (epoch 0), else 0, so the live scalars of a row equal the analysis of the store up to it.
    flip_threshold: forgetting events that make a sample "flip-flopping".
    overwrite: replace an existing store of the same name instead of refusing to start.
    locking: HDF5 file locking of the writer: ``"best-effort"`` (default; works on filesystems without
        locks), ``True`` or ``False``.
    wandb_media: with a WandbLogger, log histograms, a category chart and a hard-samples table at each
        validation epoch end (global rank 0 only), and the store as an artifact at the end of fit.
    wandb_table_rows: rows of the hard-samples table (most flip-flopping, then never learned), at most.
    wandb_table_every_n_epochs: log the table (with thumbnails, the costliest item, about 150 ms for 100
        rows) at every n-th row and for the last row at the end of fit; histograms and the category chart
        are logged every row.
    wandb_artifact_max_mb: upload the store as an artifact below this size; above it, log a reference.
    thumbnail_unnormalize: ``(mean, std)`` per channel to undo before making thumbnails (the store's and
        the W&B table's); without it, each float thumbnail is stretched to its own range (min-max), uint8
        images are divided by 255.
    thumbnails: keep one small thumbnail per validation sample in the store (the first time its id is seen),
        for galleries, the sample explorer and W&B tables away from the data. Made when the inputs are images
        ((B, 1 or 3, H, W), float or uint8, ``batch[0]`` or an ``image``/``x``/``pixel_values`` key; or
        ``BatchRecord.images`` from an overridden ``extract_batch``), downsampled on the device and moved
        with the epoch's one transfer. ``False`` switches them off; a
        :class:`~lightning_ddd.capture.thumbnails.ThumbnailOptions` sets everything (``train=True`` for the
        training split, off by default).
    thumbnail_size: the long side of a thumbnail in pixels (default 64; never larger than the image).
    thumbnails_max_mb: the most one split's thumbnails may take raw (default 1024); the size shrinks to fit,
        down to 8 px, else a warning and no thumbnails. 50,000 ImageNet images at 64 px: 586 MiB raw.
    class_names: class names (index = class), or a dict of them by split, kept in the store for the report;
        by default the dataset's ``classes`` (torchvision's convention) when it has them.
    record_train: also record each training presentation (in train mode) as one row per epoch of the split
        ``train_split`` (forgetting events, data maps and AUM in Toneva et al.'s and Swayamdipta et al.'s
        sense). Ids come from the batch (``WithIndex``, an ``index`` key) or, exactly, from a sequential
        sampler or the ``DistributedSampler`` Lightning injects; other shuffling loaders are refused.
    train_split: the split name of the training presentations (default ``"train"``).
    outputs: what the model's outputs are: ``"auto"`` (default) reads an epoch whose outputs all lie in
        [0, 1] (and whose rows sum to 1 for several classes) as probabilities, with one warning; ``"logits"``
        or ``"probabilities"`` say so. Probabilities are recorded as the model's decision (argmax; ``p > 0.5``
        for a single sigmoid output), loss ``-log p(target)`` and margin ``log p(target) - log p(other)``,
        and the row carries the flag ``PROBABILITIES``.
    pending_timeout: seconds the end of a run waits for rows that could not yet be written (a reader held
        the store, the disk was full or read-only) before it warns and leaves them in ``<store>.pending/``
        for ``lightning-ddd repair``.

Write failures never stop training: a row that cannot go into the store (full disk, read-only
directory) is parked in a side file ``<store>.h5.pending/`` or, if even that fails, kept in memory and
retried in order; one warning says why and how much space is free. Checkpoints count only rows in the store
or in side files, so a resumed run records again what was lost.

Logged metrics (per split, identical on every rank):
    ``<prefix>/<split>/accuracy``, ``always_learned``, ``never_learned``, ``flip_flopping`` (fractions so
    far), ``learned``, ``forgotten`` (since the previous row), ``kappa_prev`` (error consistency with the
    previous row), ``pred_changes`` (predicted-class changes since the previous row).

Raises:
    ValueError: bad configuration, batches without targets, logits of an unexpected shape, ids out of
        range or ambiguous, targets out of range.
    FileExistsError: a store of that name exists and the run is not resumed.
    StoreLockedError: another recorder writes the same store.

Example::

    from lightning.pytorch import Trainer
    from lightning_ddd import DecisionRecorder

    trainer = Trainer(callbacks=[DecisionRecorder("ddd/")], num_sanity_val_steps=-1, max_epochs=90)
    trainer.fit(model, datamodule)   # -> ddd/<run>.h5
"""
