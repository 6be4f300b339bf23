SUMMARY = "pycam delta update bundle (RAUC adaptive, block-hash-index)"
DESCRIPTION = "The same images as pycam-bundle, marked adaptive=block-hash-index: a \
device installing it over HTTP streaming fetches only the chunks whose hashes it does not \
already have in its slots, so an update downloads roughly the changed part of the root."

require pycam-bundle.inc

# adaptive updates need a verity bundle; the rootfs and kernel slots are raw partitions,
# which RAUC hashes in 4 KiB blocks (squashfs and the vfat image are 4 KiB aligned)
RAUC_SLOT_rootfs[adaptive] = "block-hash-index"
RAUC_SLOT_kernel[adaptive] = "block-hash-index"
