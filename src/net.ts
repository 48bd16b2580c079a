// The network API: stream sockets driven by the ring (one file per concept).

export { type SocketAddress, type AddressOptions, type ListenOptions } from './address.js'
export { type PoolSlice, type SendData, type SendZcResult } from './send-data.js'
export { TcpStream, onStreamClose, streamNative } from './stream.js'
export { TcpListener } from './listener.js'
export { sendZcBatch, type ZcMessage } from './send-batch.js'
