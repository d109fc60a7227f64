// Photos are shrunk on the phone before they are stored: at most MAX_BYTES as JPEG.

export const MAX_BYTES = 200 * 1024;
const LONG_EDGES = [1600, 1280, 1024, 800, 640, 480];
const QUALITIES = [0.82, 0.7, 0.58, 0.46];

function encode(bitmap, longEdge, quality) {
  const scale = Math.min(1, longEdge / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement('canvas');
  canvas.width = Math.max(1, Math.round(bitmap.width * scale));
  canvas.height = Math.max(1, Math.round(bitmap.height * scale));
  canvas.getContext('2d').drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  return new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', quality));
}

/** The largest, best-looking JPEG of `file` that fits in MAX_BYTES. */
export async function downscale(file) {
  const bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
  try {
    for (const edge of LONG_EDGES) {
      for (const quality of QUALITIES) {
        const blob = await encode(bitmap, edge, quality);
        if (blob && blob.size <= MAX_BYTES) return blob;
      }
    }
    throw new Error('photo too large');
  } finally {
    bitmap.close();
  }
}
