SUMMARY = "pycam kernel slot image: vfat with the kernel Image and the initramfs"
DESCRIPTION = "The content of kernel_a / kernel_b (partitions/: role kernel): Image and \
initrd.img on vfat, read by the boot script with `load`. The wic image writes it into both \
kernel partitions and the RAUC bundles carry it as the kernel slot image (slot group with \
the rootfs)."
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/MIT;md5=0835ade698e0bcf8506ecda2f7b4f302"

DEPENDS = "dosfstools-native mtools-native"

# no sources: the image is assembled from the kernel and initramfs in DEPLOY_DIR_IMAGE
SRC_URI = ""
INHIBIT_DEFAULT_DEPS = "1"

inherit deploy nopackages

PACKAGE_ARCH = "${MACHINE_ARCH}"

PYCAM_INITRAMFS_IMAGE ?= "pycam-initramfs"
PYCAM_INITRAMFS_FSTYPE ?= "cpio.gz"

do_compile[depends] += " \
    virtual/kernel:do_deploy \
    ${PYCAM_INITRAMFS_IMAGE}:do_image_complete \
"

do_compile() {
    image=${DEPLOY_DIR_IMAGE}/${KERNEL_IMAGETYPE}
    initrd=${DEPLOY_DIR_IMAGE}/${PYCAM_INITRAMFS_IMAGE}-${MACHINE}.${PYCAM_INITRAMFS_FSTYPE}
    # sized to its files, as the default engine does (pycam/generate/genimage.py): every install
    # writes the whole image, and empty FAT space would be written to the card each time
    content=$(expr $(stat -L -c %s $image) + $(stat -L -c %s $initrd))
    wanted=$(expr $content \* \( 100 + ${PYCAM_KERNEL_SLACK_PERCENT} \) / 100 + ${PYCAM_KERNEL_SLACK_BYTES})
    kb=$(expr \( $wanted + 1048575 \) / 1048576 \* 1024)
    if [ $kb -gt ${PYCAM_KERNEL_PART_KB} ]; then
        bbfatal "the kernel and initramfs ($content bytes) do not fit the kernel partition (${PYCAM_KERNEL_PART_KB} KiB): make the kernel partitions bigger in partitions/"
    fi
    rm -f ${B}/pycam-kernel.vfat
    # a fixed volume id and SOURCE_DATE_EPOCH timestamps keep the image reproducible
    mkfs.vfat -C -n KERNEL -i 50594341 ${B}/pycam-kernel.vfat $kb
    mcopy -i ${B}/pycam-kernel.vfat -m $image ::Image
    mcopy -i ${B}/pycam-kernel.vfat -m $initrd ::initrd.img
}

do_deploy() {
    install -m 0644 ${B}/pycam-kernel.vfat ${DEPLOYDIR}/pycam-kernel.vfat
}
addtask deploy after do_compile before do_build
