SUMMARY = "simplejpeg: fast JPEG encoding and decoding with libjpeg-turbo"
DESCRIPTION = "A Cython extension for fast JPEG encoding and decoding with a \
statically built copy of libjpeg-turbo; picamera2 encodes JPEG and MJPEG with it."
HOMEPAGE = "https://gitlab.com/jfolz/simplejpeg"
LICENSE = "MIT & BSD-3-Clause & IJG & Zlib"
LIC_FILES_CHKSUM = "file://LICENSE;md5=4e1b2459f5d0026e696701cd45973647"

# setup.py builds the bundled libjpeg-turbo (lib/) with cmake, statically, then the Cython
# extension against it and numpy's headers
DEPENDS += "cmake-native nasm-native python3-cython-native python3-numpy python3-numpy-native"

SRC_URI += "file://toolchain.cmake.in"
SRC_URI[sha256sum] = "5ac7d9489eeb812c2e7ea5c283994a29d9fefdfe5ed7b86c09d485e0dd366689"

inherit pypi python_setuptools_build_meta

RDEPENDS:${PN} += "python3-core python3-numpy"

# cross-compile the bundled libjpeg-turbo with the recipe's toolchain
export CMAKE_TOOLCHAIN_FILE = "${WORKDIR}/toolchain.cmake"

do_configure:prepend() {
    sed -e 's|@ARCH@|${TARGET_ARCH}|' \
        -e 's|@CC@|${@d.getVar('CC').split()[0]}|' \
        -e 's|@CFLAGS@|${@' '.join(d.getVar('CC').split()[1:])} ${CFLAGS}|' \
        -e 's|@SYSROOT@|${STAGING_DIR_TARGET}|' \
        ${WORKDIR}/toolchain.cmake.in > ${WORKDIR}/toolchain.cmake
}
