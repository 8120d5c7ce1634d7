/**
 * Alipay writes money as decimal strings in yuan ("88.88", "-0.01"); payrecon counts integer fen. The one
 * place the two meet, both ways, by the digits alone: a float would turn "0.29" into 28.999999999999996
 * fen. Pure.
 */

const YUAN = /^(-?)(\d{1,16})(?:\.(\d{1,2}))?$/;
const MAX_FEN = BigInt(Number.MAX_SAFE_INTEGER);

/** "88.88" → 8888, "-0.5" → -50, "100" → 10000; three decimals, exponents, signs other than "-" throw. */
export function yuanToFen(text: string): number {
  const match = YUAN.exec(text.trim());
  if (!match)
    throw new RangeError(`not an amount in yuan with at most two decimals: ${JSON.stringify(text)}`);
  const [, sign, whole = '', fraction = ''] = match;
  const fen = BigInt(whole) * 100n + BigInt(fraction.padEnd(2, '0'));
  if (fen > MAX_FEN) throw new RangeError(`amount out of range: ${text}`);
  return Number(sign === '-' ? -fen : fen);
}

/** 8888 → "88.88", 1 → "0.01", -5 → "-0.05": what Alipay's requests carry. */
export function fenToYuan(fen: number): string {
  if (!Number.isSafeInteger(fen)) throw new RangeError(`not a whole number of fen: ${fen}`);
  const abs = BigInt(Math.abs(fen));
  return `${fen < 0 ? '-' : ''}${abs / 100n}.${String(abs % 100n).padStart(2, '0')}`;
}
