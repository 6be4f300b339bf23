SUMMARY = "pycam full update bundle (RAUC, verity)"
DESCRIPTION = "Signed RAUC bundle with pycam-image's root and the kernel slot image: \
installs both slots of the inactive slot group."

require pycam-bundle.inc

RAUC_SLOT_rootfs[fstype] = "${PYCAM_ROOTFS_FSTYPE}"
RAUC_SLOT_rootfs[rename] = "rootfs.squashfs"

RAUC_SLOT_kernel[type] = "file"
RAUC_SLOT_kernel[file] = "${PYCAM_KERNEL_IMAGE}"
RAUC_SLOT_kernel[rename] = "kernel.vfat"
