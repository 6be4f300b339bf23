SUMMARY = "pycam U-Boot boot script: A/B slot choice with boot counting"
DESCRIPTION = "boot.scr compiled from ota/boot.cmd.in as generated for this board by \
`python -m pycam.yocto sync`: it reads and writes the redundant raw U-Boot environment \
itself, counts boot attempts per slot (BOOT_ORDER, BOOT_x_LEFT) and boots the slot's \
kernel partition."
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/MIT;md5=0835ade698e0bcf8506ecda2f7b4f302"

DEPENDS = "u-boot-tools-native"
# on the Raspberry Pi, meta-raspberrypi's U-Boot depends on this name
PROVIDES += "u-boot-default-script"

SRC_URI = "file://boot.cmd"

S = "${WORKDIR}"
B = "${WORKDIR}/build"

INHIBIT_DEFAULT_DEPS = "1"

inherit deploy nopackages kernel-arch

PACKAGE_ARCH = "${MACHINE_ARCH}"

do_compile() {
    uboot-mkimage -A ${UBOOT_ARCH} -T script -C none -n "pycam boot script" -d ${S}/boot.cmd ${B}/boot.scr
}

do_deploy() {
    install -m 0644 ${B}/boot.scr ${DEPLOYDIR}/boot.scr
}
addtask deploy after do_compile before do_build
