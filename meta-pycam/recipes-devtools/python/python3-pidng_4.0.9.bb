SUMMARY = "PiDNG: Adobe DNG raw images from Raspberry Pi cameras (used by picamera2)"
DESCRIPTION = "Creates DNG files from raw Bayer data of Raspberry Pi camera sensors; \
picamera2 imports it to save raw captures."
HOMEPAGE = "https://github.com/schoolpost/PiDNG"
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://LICENSE;md5=092f551bd6b87930ba9ba190f3633972"

SRC_URI[sha256sum] = "560eb008086f8a715fd9e1ab998817a7d4c8500a7f161b9ce6af5ab27501f82c"

PYPI_PACKAGE = "pidng"

inherit pypi setuptools3

# its ljpeg92 compressor is a C extension
DEPENDS += "python3-numpy-native"
RDEPENDS:${PN} += "python3-core python3-numpy"
