// The network API: stream sockets driven by the ring (one file per concept).

export { type SocketAddress, type InetAddress, type UnixAddress, type AddressOptions, type InetAddressOptions, type UnixAddressOptions, type ListenOptions } from './address.js'
export { type PoolSlice, type SendData, type SendZcResult } from './send-data.js'
export { TcpStream, onStreamClose, streamNative, type StreamOptions, type CloseOptions } from './stream.js'
export { TcpListener } from './listener.js'
export { sendZcBatch, type ZcMessage } from './send-batch.js'
export { type NodeStream, type NodeStreamOptions } from './node-stream.js'
export { type ConnectOptions } from './stream-connect.js'
