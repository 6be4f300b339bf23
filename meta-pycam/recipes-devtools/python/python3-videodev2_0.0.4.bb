SUMMARY = "Python ctypes bindings for the Linux videodev2 (V4L2) API (used by picamera2)"
DESCRIPTION = "ctypes definitions of the Linux V4L2 userspace API (videodev2.h), \
used by picamera2 for its V4L2 hardware encoders and DMA heaps."
HOMEPAGE = "https://github.com/raspberrypi/python-videodev2"
LICENSE = "BSD-3-Clause"
LIC_FILES_CHKSUM = "file://PKG-INFO;beginline=7;endline=7;md5=53dbfa56f61b90215a9f8f0d527c043d"

SRC_URI[sha256sum] = "c34ba70491d148c23a08cbacd8efabeb413cff5baa943a7548ac4abd1eb19e2a"

inherit pypi setuptools3

RDEPENDS:${PN} += "python3-core python3-ctypes"
