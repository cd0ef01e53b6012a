"""The training core that proxies, teachers and full-scale training share: the LightningModule,
MobileCLIP's loss, the fit loop and their configs."""
