/** File transfer core: uploads (plain or zip), zip downloads, and list_files. No wire format here. */
export { type ExtractResult, extractZip } from './archive.js';
export { createDownload, type Download } from './download.js';
export { listFiles } from './list-files.js';
export { isWithin, requireAbsolutePath } from './paths.js';
export {
  isArchiveUpload,
  type UploadOptions,
  type UploadRequest,
  type UploadResult,
  uploadFile,
} from './upload.js';
