// The server's JSON API: login, logout, who am I. Errors carry the HTTP status.

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.reason || `HTTP ${status}`);
    this.status = status;
    this.error = body?.error || '';
  }
}

async function call(method, path, body) {
  let res;
  try {
    res = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: body ? { 'Content-Type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch {
    throw new ApiError(0, { error: 'network' });
  }
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

export const login = (name, password) => call('POST', '/api/login', { name, password });
export const logout = () => call('POST', '/api/logout', {});
/** {name, display_name, roles, grids: [{id, name, db}], version} */
export const me = () => call('GET', '/api/me');
