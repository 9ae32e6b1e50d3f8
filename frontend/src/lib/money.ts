/**
 * Money as the API sends it: LLM costs in micro-dollars, Stripe amounts in the currency's
 * smallest unit (cents). Kept apart from the costs page so pages that only format money do not
 * pull in its chart library.
 */

/** Micro-dollars as dollars: 2 decimals, or 4 under $1 (a single LLM call costs fractions of a cent). */
export function formatUsd(micros: number): string {
  const usd = micros / 1_000_000;
  const digits = usd !== 0 && Math.abs(usd) < 1 ? 4 : 2;
  return usd.toLocaleString("en-US", {
    style: "currency",
    currency: "USD",
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/**
 * An amount in the currency's smallest unit (Stripe's convention: cents, or yen for JPY) as money.
 * `whole` drops the decimals of round amounts ("$29" rather than "$29.00"), for prices.
 */
export function formatMinor(amount: number, currency = "usd", { whole = false }: { whole?: boolean } = {}): string {
  const code = currency.toUpperCase();
  let format: Intl.NumberFormat;
  try {
    format = new Intl.NumberFormat("en-US", { style: "currency", currency: code });
  } catch {
    return `${(amount / 100).toFixed(2)} ${code}`;
  }
  const digits = format.resolvedOptions().maximumFractionDigits ?? 2;
  const value = amount / 10 ** digits;
  if (whole && Number.isInteger(value)) {
    return value.toLocaleString("en-US", { style: "currency", currency: code, maximumFractionDigits: 0 });
  }
  return format.format(value);
}
