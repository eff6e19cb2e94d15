/** Builds the page into `outdir` (index.html + app.js) and returns the path of its index.html. */
export function buildBrowserUpload(outdir: string): Promise<string>;
