SUMMARY = "pycam board configuration of the root filesystem"
DESCRIPTION = "The files the default engine generates into the root from the product \
definition (pycam/engine/assemble.py generated_files), here committed per board by \
`python -m pycam.yocto sync`: the systemd watchdog drop-in, modules to load, the app's \
board settings and board.json, plus the firmware version."
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/MIT;md5=0835ade698e0bcf8506ecda2f7b4f302"

SRC_URI = " \
    file://10-pycam-watchdog.conf \
    file://modules-load.conf \
    file://board.json \
    file://app.toml \
"

S = "${WORKDIR}"

INHIBIT_DEFAULT_DEPS = "1"
PACKAGE_ARCH = "${MACHINE_ARCH}"

do_install() {
    install -d ${D}${sysconfdir}/systemd/system.conf.d ${D}${sysconfdir}/modules-load.d ${D}${sysconfdir}/pycam
    install -m 0644 ${S}/10-pycam-watchdog.conf ${D}${sysconfdir}/systemd/system.conf.d/
    install -m 0644 ${S}/modules-load.conf ${D}${sysconfdir}/modules-load.d/pycam.conf
    install -m 0644 ${S}/board.json ${S}/app.toml ${D}${sysconfdir}/pycam/
    echo "${PYCAM_VERSION}" > ${D}${sysconfdir}/pycam/version
    # mount points of the factory and data partitions (fstab, initramfs)
    install -d ${D}/data ${D}/factory
}

FILES:${PN} += "/data /factory"
# the board's kernel modules (board.yml kernel.modules): recommended, a built-in driver has no package
RRECOMMENDS:${PN} = "${PYCAM_KERNEL_MODULES}"
