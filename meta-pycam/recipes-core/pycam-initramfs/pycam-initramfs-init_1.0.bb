SUMMARY = "pycam initramfs /init: mounts the A/B squashfs root and /data"
DESCRIPTION = "rootfs/initramfs/init from the pycam checkout (the same script as the default \
engine) and its board configuration /etc/pycam-initramfs.conf (storage modules, data and \
factory devices), generated from board/ and partitions/."
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/MIT;md5=0835ade698e0bcf8506ecda2f7b4f302"

# the script is rootfs/initramfs/init of this checkout, shared with the default engine
# nooelint: oelint.vars.fileextrapaths,oelint.vars.outofcontext
FILESEXTRAPATHS:prepend := "${PYCAM_TOPDIR}/rootfs/initramfs:"
SRC_URI = " \
    file://init \
    file://pycam-initramfs.conf \
"

S = "${WORKDIR}"

INHIBIT_DEFAULT_DEPS = "1"
PACKAGE_ARCH = "${MACHINE_ARCH}"

do_install() {
    install -m 0755 ${S}/init ${D}/init
    install -d ${D}${sysconfdir}
    install -m 0644 ${S}/pycam-initramfs.conf ${D}${sysconfdir}/pycam-initramfs.conf
}

FILES:${PN} += "/init"
RDEPENDS:${PN} = "busybox"
# modprobe tolerates a module that is built in, and a built-in driver has no package
RRECOMMENDS:${PN} = "${PYCAM_INITRAMFS_MODULES}"
