import { splitUrlList } from './url-list';

/** A service URL (or a comma-separated list of them) with every password hidden, for error messages and logs. */
export function redactUrl(raw: string): string {
  const urls = splitUrlList(raw);
  if (urls.length > 1) return urls.map(redactOneUrl).join(',');
  return redactOneUrl(raw);
}

function redactOneUrl(raw: string): string {
  try {
    const url = new URL(raw);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return '(unparseable URL)';
  }
}

/** Variables whose values are secrets: never printed, only their length. */
const SECRET_NAME = /SECRET|PASSWORD|TOKEN|KEY/i;

/**
 * How an environment variable's value may appear in an error message: a secret by its length only, and
 * any `//user:password@` (a URL, even one too broken to parse) with its password hidden.
 */
export function describeEnvValue(name: string, value: string | undefined): string {
  if (value === undefined) return '(unset)';
  if (SECRET_NAME.test(name)) return `(hidden, ${value.length} characters)`;
  return JSON.stringify(value.replace(/(\/\/[^/:@\s]*:)[^@/\s]*@/g, '$1***@'));
}
