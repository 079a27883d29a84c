// Messages written straight into the database by the benchmarks, shaped exactly as the app stores them
// (src/services/message-content.ts storedMessage): a plain text message in a public channel.
import type { NewMessage } from '../../src/services/message-content.js';

export function seedMessage(channelId: string, content: string, createdAt: Date): NewMessage {
  return {
    channelId,
    channelKind: 'public',
    recipientId: null,
    senderId: 'bench',
    senderName: 'Bench',
    content,
    messageType: 'text',
    replyTo: null,
    attachments: [],
    clientId: undefined,
    createdAt,
  };
}
