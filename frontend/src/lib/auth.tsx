/** Who is signed in: `/api/auth/me` once at start, refreshed after anything that changes it. */
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { api, ApiError, call, type Me } from "../api/client";

interface AuthState {
  /** undefined while loading; null when signed out. */
  me: Me | null | undefined;
  setMe: (me: Me | null) => void;
  refresh: () => Promise<Me | null>;
  logout: () => Promise<void>;
}

const AuthContext = createContext<AuthState | null>(null);

export async function fetchMe(): Promise<Me | null> {
  try {
    return await call(() => api.GET("/api/auth/me"));
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return null;
    throw err;
  }
}

export function AuthProvider({ children, initial }: { children: ReactNode; initial?: Me | null }) {
  const [me, setMe] = useState<Me | null | undefined>(initial);

  const refresh = useCallback(async () => {
    const value = await fetchMe();
    setMe(value);
    return value;
  }, []);

  useEffect(() => {
    if (initial !== undefined) return;
    // A failure other than 401 (server down): treat as signed out; the login page says more.
    refresh().catch(() => setMe(null));
  }, [initial, refresh]);

  const logout = useCallback(async () => {
    await call(() => api.POST("/api/auth/logout"));
    setMe(null);
  }, []);

  const value = useMemo(() => ({ me, setMe, refresh, logout }), [me, refresh, logout]);
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthState {
  const ctx = useContext(AuthContext);
  if (!ctx) throw new Error("useAuth outside AuthProvider");
  return ctx;
}
