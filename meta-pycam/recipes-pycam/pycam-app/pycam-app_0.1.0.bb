SUMMARY = "pycam camera service"
DESCRIPTION = "The pycam camera app (app/ of this repository): capture through picamera2, \
V4L2 or a synthetic source, H.264 main/sub streams, live view, motion events, recordings \
and the device API. Built with the pep517 setuptools backend."
HOMEPAGE = "https://github.com/pycam/pycam"
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/MIT;md5=0835ade698e0bcf8506ecda2f7b4f302"

# the app is app/ of this checkout (its version: app/pyproject.toml)
# nooelint: oelint.vars.fileextrapaths,oelint.vars.outofcontext
FILESEXTRAPATHS:prepend := "${PYCAM_TOPDIR}:"
SRC_URI = "file://app/"

S = "${WORKDIR}/app"

inherit python_setuptools_build_meta systemd

# a stale setuptools build tree in the checkout must not end up in the wheel
do_configure:prepend() {
    rm -rf ${S}/build ${S}/src/*.egg-info
}

do_install:append() {
    install -d ${D}${systemd_system_unitdir}
    install -m 0644 ${S}/systemd/pycam-app.service ${D}${systemd_system_unitdir}/pycam-app.service
    # the unit and the health gate call the console scripts where the default engine puts them
    install -d ${D}${prefix}/local/bin
    ln -sf ../../bin/pycam-app ${D}${prefix}/local/bin/pycam-app
    ln -sf ../../bin/pycam-health ${D}${prefix}/local/bin/pycam-health
}

SYSTEMD_SERVICE:${PN} = "pycam-app.service"

FILES:${PN} += "${prefix}/local/bin"

# the standard library modules app/src imports (oe-core's python3 package split)
RDEPENDS:${PN} = " \
    python3-aiohttp \
    python3-asyncio \
    python3-av \
    python3-core \
    python3-crypt \
    python3-datetime \
    python3-io \
    python3-json \
    python3-logging \
    python3-netclient \
    python3-numbers \
    python3-sqlite3 \
    python3-threading \
    python3-tomllib \
"
# boards with a CSI camera (board.yml hardware.camera: picamera2)
# nooelint: oelint.vars.dependsordered - a conditional addition to the list above
RDEPENDS:${PN} += "${@'python3-picamera2' if d.getVar('PYCAM_CAMERA') == 'picamera2' else ''}"
