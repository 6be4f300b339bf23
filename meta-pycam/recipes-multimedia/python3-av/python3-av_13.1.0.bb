SUMMARY = "PyAV: Pythonic bindings for FFmpeg's libraries"
DESCRIPTION = "PyAV built from the PyPI source against the image's FFmpeg (oe-core ffmpeg \
with x264), for the pycam app's capture, encoding and fMP4 muxing."
HOMEPAGE = "https://github.com/PyAV-Org/PyAV"
LICENSE = "BSD-3-Clause"
LIC_FILES_CHKSUM = "file://LICENSE.txt;md5=a9c4cea4308c4521674ecd7c3255d8af"

SRC_URI[sha256sum] = "d3da736c55847d8596eb8c26c60e036f193001db3bc5c10da8665622d906c17e"

PYPI_PACKAGE = "av"

inherit pypi python_setuptools_build_meta pkgconfig

# PyAV 13 supports FFmpeg 6.x (scarthgap: 6.1); 14 needs FFmpeg 7
DEPENDS += "ffmpeg python3-cython-native"

RDEPENDS:${PN} += "\
    python3-core \
    python3-logging \
    python3-numbers \
"
