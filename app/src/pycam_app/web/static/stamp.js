// Decoder for the synthetic source's stamp (see pycam_app/stamp.py): frame counter and capture time.
// Two bands at the top, each height/20 high, of 40 black/white blocks, most significant bit first.
'use strict';
const PycamStamp = {
  BITS: 40, BANDS: 2, BAND_FRACTION: 20,
  check(c) { return ((c ^ (c >>> 8) ^ (c >>> 16) ^ (c >>> 24)) & 0xff) >>> 0; },
  // luma(x, y) -> 0..255; returns {counter, wallMs} or null if the check byte does not match.
  decode(luma, width, height) {
    const words = [];
    for (let band = 0; band < this.BANDS; band++) {
      const y = Math.floor((band + 0.5) * height / this.BAND_FRACTION);
      let word = 0;
      for (let k = 0; k < this.BITS; k++) {
        const x = Math.floor((k + 0.5) * width / this.BITS);
        word = word * 2 + (luma(x, y) >= 128 ? 1 : 0);
      }
      words.push(word);
    }
    const counter = Math.floor(words[0] / 256), check = words[0] % 256;
    if (this.check(counter) !== check) return null;
    return {counter, wallMs: words[1]};
  },
  // Decode from a canvas 2D context holding the picture (only the stamp rows are read).
  fromCanvas(ctx, width, height) {
    const rows = Math.ceil(this.BANDS * height / this.BAND_FRACTION) + 1;
    const img = ctx.getImageData(0, 0, width, Math.min(rows, height)).data;
    return this.decode((x, y) => {
      const i = (y * width + x) * 4;
      return 0.299 * img[i] + 0.587 * img[i + 1] + 0.114 * img[i + 2];
    }, width, height);
  },
  // Milliseconds from capture to now; the stamp holds wall time modulo 2^40 ms.
  latencyMs(wallMs, nowMs) {
    const mod = 2 ** 40;
    return ((nowMs % mod) - wallMs + mod) % mod;
  },
};
