// sendZcBatch: zero-copy sends of many messages in one call.

import { invalidArgType } from './errors.js'
import { Ring } from './ring.js'
import { validateObject } from './validate.js'
import type { SendData, SendZcResult } from './send-data.js'
import { TcpStream } from './stream.js'

/** One message of `sendZcBatch`. */
export interface ZcMessage {
  stream: TcpStream
  buffers: SendData | SendData[]
}

/**
 * Zero-copy sends of many messages in one call (each in order on its
 * stream): one result per message, `{ bytes, copied, unsent }` or `{ error }`.
 */
export async function sendZcBatch(messages: ZcMessage[]): Promise<(SendZcResult | { error: Error })[]> {
  if (!Array.isArray(messages)) throw invalidArgType('messages', 'an instance of Array', messages)
  const settled = await Promise.allSettled(
    messages.map((m, i) => {
      validateObject(m, `messages[${i}]`)
      return m.stream instanceof TcpStream
        ? m.stream.sendZc(m.buffers)
        : Promise.reject(invalidArgType(`messages[${i}].stream`, 'an instance of TcpStream', m.stream))
    }),
  )
  return settled.map((r) => (r.status === 'fulfilled' ? r.value : { error: r.reason as Error }))
}

declare module './ring.js' {
  interface Ring {
    /** `sendZcBatch(messages)` (see there). */
    sendZcBatch(messages: ZcMessage[]): Promise<(SendZcResult | { error: Error })[]>
  }
}

Ring.prototype.sendZcBatch = function sendZcBatchOfRing(this: Ring, messages: ZcMessage[]) {
  return sendZcBatch(messages)
}
