// `node:net`'s classes are functions too: `net.Socket()` and `net.Server()`
// without `new` make an instance, as older code and Node's tests call them.
// A class is wrapped in a Proxy that answers such a call with `new`; every
// other use (`new`, `extends`, `instanceof`, `prototype`) passes through.

/** `cls`, callable without `new` (the call constructs). */
export function callable<C extends new (...args: any[]) => object>(cls: C): C {
  return new Proxy(cls, {
    apply: (target, self, args: unknown[]) => {
      // `X.call(this)` from an ES5-style subclass cannot set up `this`.
      if (self instanceof target) {
        throw new TypeError(`${target.name}.call(this) does not make a subclass instance: the class has private state; use class ... extends ${target.name}`)
      }
      return new target(...args)
    },
  })
}
