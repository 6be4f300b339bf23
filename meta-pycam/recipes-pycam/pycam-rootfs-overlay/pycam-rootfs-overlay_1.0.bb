SUMMARY = "pycam root overlay: health gate, factory helpers, journald, networkd"
DESCRIPTION = "rootfs/overlay/ of the pycam checkout, installed verbatim into the root as \
the default engine does: the health gate that marks the booted slot good once the camera \
streams, journald and networkd settings and the hostname."
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/MIT;md5=0835ade698e0bcf8506ecda2f7b4f302"

# nooelint: oelint.vars.fileextrapaths,oelint.vars.outofcontext
FILESEXTRAPATHS:prepend := "${PYCAM_TOPDIR}/rootfs:"
SRC_URI = "file://overlay/"

S = "${WORKDIR}/overlay"

INHIBIT_DEFAULT_DEPS = "1"

do_install() {
    cp -R --no-dereference --preserve=mode,links --no-preserve=ownership ${S}/. ${D}/
    # units of the default engine this image replaces (rootfs/units.yml yocto-replace, e.g. its OTA client)
    for unit in ${PYCAM_UNITS_REPLACED}; do
        rm -f ${D}${sysconfdir}/systemd/system/$unit
    done
}

# rootfs/overlay: etc/ and usr/lib/pycam/ (a new top-level path there fails installed-vs-shipped)
FILES:${PN} += "${nonarch_libdir}/pycam"
# the health gate runs `rauc status mark-good` and asks the app (pycam-health); RAUC's
# pre-install handler (downgrade policy, usr/lib/pycam/rauc-pre-install) is sh and awk (busybox,
# in packagegroup-core-boot); the factory helpers (factory-provision, factory-selftest,
# factory-identity) need openssl, Python and iproute2
RDEPENDS:${PN} = "iproute2 openssl-bin pycam-app python3-core rauc"
