SUMMARY = "pycam initramfs: busybox and the A/B root mounter"
DESCRIPTION = "The initrd.img of the kernel slot partitions: mounts the slot's squashfs root \
read-only, mounts /data, binds the machine-id and switches to systemd."
LICENSE = "MIT"

PACKAGE_INSTALL = "pycam-initramfs-init busybox base-files"

# no package manager, no locales, nothing but what /init uses
IMAGE_FEATURES = ""
IMAGE_LINGUAS = ""

IMAGE_FSTYPES = "cpio.gz"
IMAGE_NAME_SUFFIX = ""
IMAGE_ROOTFS_SIZE = "8192"
IMAGE_ROOTFS_EXTRA_SPACE = "0"

inherit image
