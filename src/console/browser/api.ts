/**
 * The admin API as the console calls it: the same JSON routes as any client, with the bearer
 * token the operator entered (kept in sessionStorage: gone when the browser session ends, never
 * in a cookie, so no other site can make the browser send it).
 */
const TOKEN_KEY = 'ff-detector-admin-token';

export function savedToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function saveToken(token: string | null): void {
  if (token === null || token === '') sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, token);
}

export type ApiResult<T> = { ok: true; status: number; body: T } | { ok: false; status: number; error: string };

/** What a refusal means to an operator, by status. */
function explain(status: number, error: string): string {
  if (status === 401) return `refused: missing or wrong admin token (${error})`;
  if (status === 403) return `refused: ${error}`;
  return error;
}

async function call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<ApiResult<T>> {
  const headers: Record<string, string> = { accept: 'application/json' };
  const token = savedToken();
  if (token) headers.authorization = `Bearer ${token}`;
  if (method === 'POST') headers['content-type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(path, { method, headers, cache: 'no-store', credentials: 'omit', ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  } catch (error) {
    return { ok: false, status: 0, error: `the daemon did not answer (${error instanceof Error ? error.message : String(error)})` };
  }
  let parsed: unknown = null;
  try {
    parsed = await response.json();
  } catch {
    // not JSON: reported by status below
  }
  if (response.ok) return { ok: true, status: response.status, body: parsed as T };
  const message = typeof parsed === 'object' && parsed !== null && 'error' in parsed ? String(parsed.error) : `HTTP ${response.status}`;
  return { ok: false, status: response.status, error: explain(response.status, message) };
}

export const get = <T>(path: string): Promise<ApiResult<T>> => call<T>('GET', path);
export const post = <T>(path: string, body?: unknown): Promise<ApiResult<T>> => call<T>('POST', path, body ?? {});
