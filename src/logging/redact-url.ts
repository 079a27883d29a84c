// Query parameters that carry credentials (signed file links, socket tickets) are masked in logged URLs.
const SENSITIVE_PARAMS = /([?&](?:sig|ticket|token|access_token|refresh_token|signature)=)[^&#]*/gi;

export function redactUrl(url: string): string {
  return url.includes('?') ? url.replace(SENSITIVE_PARAMS, '$1[REDACTED]') : url;
}
