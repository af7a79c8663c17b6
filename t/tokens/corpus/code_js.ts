export async function fetchAll<T>(urls: string[], opts: RequestInit = {}): Promise<T[]> {
  const results = await Promise.allSettled(urls.map((u) => fetch(u, opts).then((r) => r.json() as Promise<T>)));
  return results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
}
const re = /^(?:https?:\/\/)?([\w.-]+)(?::(\d{2,5}))?(\/.*)?$/i;
console.log(`${re.test("http://localhost:8787/v1/chat")}`); // => true
let x = 0x1F ?? 0b1010 ?? 1_000_000n; x >>>= 2; x **= 3;
