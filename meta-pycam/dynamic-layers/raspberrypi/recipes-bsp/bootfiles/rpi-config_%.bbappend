# CSI cameras (imx219, imx477, imx708) through libcamera: let the firmware load the sensor's
# device tree overlay
do_deploy:append:pycam() {
    echo "# pycam: CSI camera for libcamera" >> ${DEPLOYDIR}/${BOOTFILES_DIR_NAME}/config.txt
    echo "camera_auto_detect=1" >> ${DEPLOYDIR}/${BOOTFILES_DIR_NAME}/config.txt
}
