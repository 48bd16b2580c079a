// Helpers the network specs share: deterministic payloads and a connected
// pair of streams over loopback TCP on one ring.

import { zcio } from './support.js'

type Ring = InstanceType<typeof zcio.Ring>
type Stream = InstanceType<typeof zcio.TcpStream>

/** `n` bytes of a fixed pseudo-random sequence picked by `seed`. */
export function payload(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n)
  let x = seed
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    b[i] = x >>> 24
  }
  return b
}

/** A listener on `ring`, and a client connected to it with the accepted server end. */
export async function pair(ring: Ring): Promise<{ server: Stream; client: Stream; listener: ReturnType<typeof zcio.TcpListener.bind> }> {
  const listener = zcio.TcpListener.bind(ring, { port: 0 })
  const accepted = listener.accept()
  const client = await zcio.TcpStream.connect(ring, { port: listener.address.port! })
  const server = (await accepted)!
  return { server, client, listener }
}
