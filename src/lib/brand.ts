// Receiver checks: a method or accessor called on something that is not a
// real instance (`Object.create(X.prototype)`, `X.prototype.m.call({})`)
// fails with `ERR_INVALID_ARG_TYPE`, not the engine's bare TypeError about a
// private field; methods that return promises reject instead of throwing.

import { inspect } from 'node:util'
import { invalidArgType } from './errors.js'

/**
 * Wraps every method and accessor of `cls.prototype` with a check that
 * `this` passes `has` (a private-field brand check). `async` names the
 * methods that return a promise.
 */
export function guardMethods(
  cls: abstract new (...args: never[]) => unknown,
  name: string,
  has: (o: unknown) => boolean,
  async: readonly string[],
): void {
  const proto = cls.prototype as Record<PropertyKey, unknown>
  const bad = (self: unknown): Error => invalidArgType('this', `an instance of ${name}`, self)
  const check = (self: unknown): boolean => typeof self === 'object' && self !== null && has(self)
  for (const key of Reflect.ownKeys(proto)) {
    if (key === 'constructor') continue
    const d = Object.getOwnPropertyDescriptor(proto, key)!
    if (typeof d.value === 'function') {
      const f = d.value as (...args: unknown[]) => unknown
      const rejects = typeof key === 'string' && async.includes(key)
      const inspector = key === inspect.custom
      // Fixed parameters rather than a rest array: no allocation per call on
      // hot methods (write, readFixed); none here takes more than six.
      const guarded = function (this: unknown, a?: unknown, b?: unknown, c?: unknown, d?: unknown, e?: unknown, g?: unknown): unknown {
        if (!check(this)) {
          if (inspector) return `${name} <not an instance>`
          if (rejects) return Promise.reject(bad(this))
          throw bad(this)
        }
        return f.call(this, a, b, c, d, e, g)
      }
      Object.defineProperty(guarded, 'name', { value: f.name })
      Object.defineProperty(guarded, 'length', { value: f.length })
      Object.defineProperty(proto, key, { ...d, value: guarded })
    } else if (d.get !== undefined || d.set !== undefined) {
      const { get, set } = d
      Object.defineProperty(proto, key, {
        ...d,
        get:
          get &&
          function (this: unknown) {
            if (!check(this)) throw bad(this)
            return get.call(this)
          },
        set:
          set &&
          function (this: unknown, v: unknown) {
            if (!check(this)) throw bad(this)
            set.call(this, v)
          },
      })
    }
  }
}
