SUMMARY = "Picamera2: the libcamera-based Python camera library for the Raspberry Pi"
DESCRIPTION = "Picamera2 from PyPI, on libcamera's Python bindings (meta-multimedia libcamera, \
PACKAGECONFIG pycamera, enabled by the pycam distro on the Pi) and the Pi's V4L2 encoders."
HOMEPAGE = "https://github.com/raspberrypi/picamera2"
LICENSE = "BSD-2-Clause"
LIC_FILES_CHKSUM = "file://LICENSE;md5=6541a38108b5accb25bd55a14e76086d"

SRC_URI[sha256sum] = "f4122b1d3d45e3068fe2d589b1d54ded94377d26b9444e1a0c67025b717b6108"

inherit pypi python_setuptools_build_meta

# only meaningful where libcamera has the Raspberry Pi pipeline
COMPATIBLE_MACHINE = "^rpi$"

# what `import picamera2` and its encoders/outputs load; OpenEXR, PyQt and OpenGL are only
# for the IMX500 AI camera and the preview windows, which a headless camera does not use
RDEPENDS:${PN} += "\
    libcamera-pycamera \
    python3-av \
    python3-jsonschema \
    python3-libarchive-c \
    python3-numpy \
    python3-pidng \
    python3-piexif \
    python3-pillow \
    python3-prctl \
    python3-simplejpeg \
    python3-tqdm \
    python3-videodev2 \
"
